"""The settings page, served by the navigation of ui/app.py."""

from ui.settings import settings_page

settings_page()
