"""chalice-cart: everything that is deployed besides app.py."""
