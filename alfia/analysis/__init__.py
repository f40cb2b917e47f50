"""The study report (``alfia report``) and the ablations (``alfia ablate``): figures, latent space, tables."""
