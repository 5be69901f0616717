"""nasdb.ui."""
