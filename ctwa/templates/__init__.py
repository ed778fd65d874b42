"""The template side: paginated import from a vendor (importer) into the local library."""
