"""The platform's image registry: its objects in global and a client that pushes images."""
