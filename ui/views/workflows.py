"""The workflows page, served by the navigation of ui/app.py."""

from ui import backend
from ui.workflows_page import workflows_page

workflows_page(backend.agent())
