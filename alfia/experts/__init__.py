"""The expert comparison (paper section 3.3, Figure 5e-f): a blinded booklet and the scoring of the ratings."""
