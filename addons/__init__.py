"""mitmproxy addons; installed as authsome.addons. Each file also loads into `mitmdump -s`."""
