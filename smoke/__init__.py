"""The shopper's journey over HTTP against any running stack (`make smoke BASE_URL=...`)."""
