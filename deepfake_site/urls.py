from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("detector.urls")),
]

# JSON for the API, the 500.html page elsewhere.
handler500 = "detector.api.views.server_error"
