"""The library page, served by the navigation of ui/app.py."""

from ui.library_page import library_page

library_page()
