"""The shoot console: one session for a whole shoot day, served to a browser.

``shoot`` runs it (the session, discovery, the disk watch, takes and their contact
sheets); ``view`` turns the session's state into what the page shows (pure); ``slate``
names takes; ``alerts`` raises and keeps alerts until acknowledged (pure); ``devices``
is the device map; ``disk`` the free space; ``metrics`` the Prometheus collector;
``access`` the token, Host allow-list and Origin checks; ``web`` the aiohttp app and its
page (``static/``).
"""
