"""``python -m lightning_cnn`` runs the command line."""

from lightning_cnn.cli import main

if __name__ == "__main__":
    main()
