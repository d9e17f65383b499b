"""``python -m tinykube`` runs the ``tinykube`` command (static pod manifests use this form)."""

from tinykube.cli.main import main

main()
