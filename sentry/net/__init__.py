"""The sandbox's network beyond its namespace: the outbound policy
(policy.py) and the connections the Sentry makes on the host for the guest
(outbound.py).  docs/design.md, Network."""
