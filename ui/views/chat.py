"""The chat page, served by the navigation of ui/app.py."""

from ui.chat import chat_page

chat_page()
