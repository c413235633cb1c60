"""The local stack: everything that runs the app offline. Never deployed."""
