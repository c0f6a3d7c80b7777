from authsome.cli import entry

entry()
