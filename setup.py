"""Where each layer's folder installs: everything under Lightwire's own import namespace, never as top-level
`services`, `tools` or `examples` (tests/unit/test_layering.py checks what a real install puts in site-packages)."""

from setuptools import find_packages, setup

# import name -> folder. The design card's folders stay where a newcomer looks for them.
ROOTS = {
    "lightwire": "lightwire",  # the ground floor: runtime, codec, Kafka I/O, analytics, topics, settings, model cache
    "lightwire.services": "services",  # one package per service; each imports only the ground floor
    "lightwire.tools": "tools",  # the operator's tools: CLI, local stack, demo, task driver and task sets
    "lightwire.examples": "examples",  # the demo agent and one agent per framework
}


def packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        found += [name] + [f"{name}.{sub}" for sub in find_packages(folder) if f"{name}.{sub}" not in ROOTS]
    return found


setup(packages=packages(), package_dir=ROOTS)
