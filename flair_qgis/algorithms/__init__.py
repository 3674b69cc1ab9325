"""The Processing algorithms of the FLAIR provider."""
