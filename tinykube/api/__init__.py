"""The Kubernetes API's shape, shared by every component: pure functions, no I/O.

- ``kinds``: the resources served (group, version, kind, plural, short names).
- ``meta``, ``pods``: typed access to metadata and pod fields.
- ``errors``, ``names``, ``fieldpath``: Status errors, name syntax, field paths.
- ``selectors``, ``quantity``: label/field/node selectors, resource quantities.
- ``schema``: upstream's OpenAPI schemas and the served OpenAPI documents.
- The write path: ``decoding`` (type checks), ``defaults``, ``validation`` (with
  ``validate_pod``, ``validate_apps``, ``validate_core``, ``validate_other``), ``patch``,
  ``apply`` with ``fieldsets`` (server-side apply, managedFields).
- ``tables`` and ``printers``: Tables for ``kubectl get``.
"""
