"""On-disk dataset formats: one module per layout, each with a reader and a writer."""
