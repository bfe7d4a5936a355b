"""The live multiview: decode at tile scale, mosaic, tile layout, the preview and its server."""
