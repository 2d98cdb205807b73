"""Loading programs: `#!` scripts and ELF (PT_INTERP via pyelftools)."""
