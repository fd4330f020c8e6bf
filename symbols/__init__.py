"""Address -> symbol: module maps, PE images, PDBs, symbol paths and stores, return-address correction."""
