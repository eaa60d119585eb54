"""The reverse tunnel: many byte streams multiplexed over one WebSocket."""
