"""The ``tinykube`` command: one subcommand per component, plus ``up``/``down``/``status``.

Subcommands live in their own modules under ``tinykube.cli`` and are imported only when
invoked, so ``tinykube --help`` stays fast and one component's imports never slow another.
"""

from __future__ import annotations

import importlib

import click

# subcommand name -> "module:attribute" of a click.Command
SUBCOMMANDS: dict[str, str] = {
    "up": "tinykube.cli.up:up",
    "down": "tinykube.cli.up:down",
    "status": "tinykube.cli.up:status",
    "apiserver": "tinykube.cli.apiserver:apiserver",
    "scheduler": "tinykube.cli.scheduler:scheduler",
    "controller-manager": "tinykube.cli.controller_manager:controller_manager",
    "cloud-controller-manager": "tinykube.cli.cloud_controller_manager:cloud_controller_manager",
    "kubelet": "tinykube.cli.kubelet:kubelet",
    "proxy": "tinykube.cli.proxy:proxy",
    "dns": "tinykube.cli.dns:dns",
    "hollow-nodes": "tinykube.cli.hollow_nodes:hollow_nodes",
    "dashboard": "tinykube.cli.dashboard:dashboard",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None
        return getattr(module, attr)


@click.group(cls=LazyGroup)
@click.version_option(package_name="tinykube")
def main() -> None:
    """tinykube: a Kubernetes cluster in Python."""


if __name__ == "__main__":
    main()
