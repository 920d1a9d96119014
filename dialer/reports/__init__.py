"""Reports and exports over the store: each report is a function of (engine, filters) that
returns a pandas DataFrame with documented columns, so the CLI and the HTML page share them."""
