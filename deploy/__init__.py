"""Package the app and deploy it as one CloudFormation stack per stage.

Not deployed itself: it runs on the developer's machine (`make deploy`).
"""
