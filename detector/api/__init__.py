"""JSON API v1: views (views.py) and the bodies they answer with (serializers.py)."""
