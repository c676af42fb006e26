"""The ticketing pages a quality engineer looks at: server-rendered HTML over the ticket service.

``mount_pages(app, service, journal=..., influx=...)`` adds them to the API's app (``/``,
``/login``, ``/tickets``, ``/tickets/{id}``, and from ``feedback``: ``/feedback/new`` for
customer service to register complaints); ``chart`` draws the evidence charts, ``evidence``
reads them from the store in use (InfluxDB if configured, else the worker's journal).
"""

from cloud.ticketing.web.pages import mount_pages, pages_router

__all__ = ["mount_pages", "pages_router"]
