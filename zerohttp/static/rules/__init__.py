"""A site's own rules, as Cloudflare Pages reads them: ROOT's ``_headers`` and ``_redirects``
(and the same lines from the settings), parsed, compiled, and applied around the static
handler."""
