"""The receiver of the provider's callbacks: delivery reports and inbound messages, landed as
files (`landing`) for the loader; `python -m messaging_assets.receiver`."""
