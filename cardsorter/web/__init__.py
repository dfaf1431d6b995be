"""The operator's web view: state fed by the web node, the aiohttp app, its guards and static assets."""
