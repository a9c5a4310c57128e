"""WSGI entry point (gunicorn/uwsgi: ``piadesk.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "piadesk.settings")
application = get_wsgi_application()
