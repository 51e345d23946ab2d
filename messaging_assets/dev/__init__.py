"""Local development, not the product: `make dev` runs `python -m messaging_assets.dev`, which
starts the sandbox and `dagster dev` together and stops both within seconds."""
