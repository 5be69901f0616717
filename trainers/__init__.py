"""nasdb.trainers."""
