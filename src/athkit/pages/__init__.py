"""Pages a person opens: one look (the consent page's) and one way to tell a browser from an
API client.

Every URL a browser can reach answers an HTML page in this style, saying what happened and what
to do; an API client (``Accept: application/json``, ``*/*`` or none) keeps the ATH JSON error
(ATH §7). Used by the server's consent and callback endpoints, the gateway, the OAuth server,
the demo shop and the console.
"""

from athkit.pages._messages import Explanation, explain, explain_status
from athkit.pages._negotiate import wants_html
from athkit.pages._render import (
    PAGE_HEADERS,
    Link,
    ath_error_page,
    message_html,
    message_page,
    page_loader,
    page_templates,
    render_page,
    status_page,
    when,
)

__all__ = [
    "PAGE_HEADERS",
    "Explanation",
    "Link",
    "ath_error_page",
    "explain",
    "explain_status",
    "message_html",
    "message_page",
    "page_loader",
    "page_templates",
    "render_page",
    "status_page",
    "wants_html",
    "when",
]
