"""After the take: synced review proxies, a multiview and a contact sheet."""
