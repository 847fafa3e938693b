"""The sessions page, served by the navigation of ui/app.py."""

from ui.sessions import sessions_page

sessions_page()
