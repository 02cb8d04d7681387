"""Dataset readers/writers (``formats``), the synthetic generator, clip sampling, transforms and DataModules."""
