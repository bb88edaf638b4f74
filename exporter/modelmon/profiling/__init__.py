"""Reading data files and building reference profiles from them."""
