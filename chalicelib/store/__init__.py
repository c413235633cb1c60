"""DynamoDB adapters, one per aggregate, over the one table (chalicelib/table.py).

Each adapter takes a low-level botocore client and the table name, never
reads the environment, and returns domain values. Every AWS error goes
through one classifier (errors.py).
"""
