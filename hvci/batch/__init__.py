"""Batch runs at lab scale: many inputs (folders, globs, archives, stdin) analysed in parallel, each in
isolation, merged into one deterministic report; the results store, baselines and the distributed engine.

* :mod:`hvci.batch.units` plans the work: command-line paths -> units (a file, an archive member, a whole
  tar archive, stdin's bytes), and what could not be read;
* :mod:`hvci.batch.work` analyses one unit (in a worker process);
* :mod:`hvci.batch.pool` runs units on local worker processes, one crash or hang costing one unit;
* :mod:`hvci.batch.run` puts it together: results in plan order whatever the order they finished in.
* :mod:`hvci.batch.images` runs ``scan``'s images on the same pool, one crash or hang costing one image.
"""
