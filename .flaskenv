# Read by the flask command (python-dotenv), so `.venv/bin/flask ...` works as typed from the repository root.
FLASK_APP=wsgi
