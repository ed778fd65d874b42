"""What every certify test needs: a library of the sandbox vendor's templates."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """The sandbox vendor's templates, imported once per module."""
    from ctwa.http import Auth, make_client
    from ctwa.sandbox.server import RunningSandbox, SandboxSettings
    from ctwa.templates.importer import Importer
    from ctwa.templates.library import TemplateLibrary

    folder = tmp_path_factory.mktemp("library")
    with RunningSandbox(SandboxSettings(port=0, store_callbacks=False)) as box, \
            make_client(auth=Auth("bearer", secret=box.credentials()["vendor_token"]),
                        origin=box.urls()["vendor_templates"]) as client:
        report = Importer(client, TemplateLibrary(folder)).run(
            box.urls()["vendor_templates"], 50, 10)
    assert report.complete and report.added
    return folder
