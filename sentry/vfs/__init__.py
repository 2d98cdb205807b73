"""The sandbox's file-system view: mount table and path resolution."""
