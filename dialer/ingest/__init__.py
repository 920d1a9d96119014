"""Practice data into the store: canonical CSV files (with column mappings) and Open Dental.

:func:`dialer.ingest.importer.import_file` imports one CSV file of clinics, patients or
appointments in one transaction, keeping rejected rows beside the input;
:mod:`dialer.ingest.opendental` reads an Open Dental database directly.
"""
