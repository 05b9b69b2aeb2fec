from ..integration.conftest import ecosystem, fast_scrape_catalog  # noqa: F401 - shared fixtures
