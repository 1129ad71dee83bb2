"""Server-rendered pages and the htmx partials that refresh them."""
