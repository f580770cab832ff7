"""Every way fetching a link can fail, each with its own message for the person who sent it."""


class LinkError(Exception):
    code = "link_failed"
    message = "The video could not be fetched from this link."

    def __init__(self, message=None):
        super().__init__(message or self.message)
        self.message = message or self.message


class NotAUrl(LinkError):
    code = "not_a_url"
    message = "This is not a web address. Paste the full link, starting with https://."


class UnsupportedScheme(LinkError):
    code = "unsupported_scheme"
    message = "Only http:// and https:// links can be analysed."


class CredentialsInUrl(LinkError):
    code = "credentials_in_url"
    message = "Links with a user name or password in them are not accepted. Remove them and try again."


class BlockedAddress(LinkError):
    code = "blocked_address"
    message = (
        "This link points to a private, local or reserved network address, which the service may "
        "not reach. Only public web addresses can be analysed."
    )


class HostNotFound(LinkError):
    code = "host_not_found"
    message = "The site in this link could not be found. Check the address."


class ConnectionFailed(LinkError):
    code = "connection_failed"
    message = "The site in this link could not be reached. Try again later."


class Stalled(LinkError):
    code = "stalled"
    message = "The site stopped sending the video, so the download was stopped. Try again later."


class TookTooLong(LinkError):
    code = "fetch_timeout"
    message = "Fetching the video took too long and was stopped at the time limit."


class TooManyRedirects(LinkError):
    code = "redirect_loop"
    message = "The link redirects too many times (a redirect loop?), so it was not followed."


class HttpError(LinkError):
    code = "http_error"

    def __init__(self, status):
        if status in (401, 403):
            text = (
                f"The site refused access (HTTP {status}). It may need a log-in, which the service "
                "never uses: download the video yourself and upload the file."
            )
        elif status == 404:
            text = "The site says there is nothing at this link (HTTP 404). Check the address."
        else:
            text = f"The site answered with an error (HTTP {status}). Try again later."
        super().__init__(text)
        self.status = status


class LoginRequired(LinkError):
    code = "login_required"
    message = (
        "This video needs a log-in or is private. The service never logs in to sites: download "
        "the video yourself and upload the file."
    )


class NoVideo(LinkError):
    code = "no_video"
    message = "No video was found at this link. Link to the post or page that shows the video."


class Playlist(LinkError):
    code = "playlist"
    message = (
        "This link holds several videos (a playlist, channel or page with many clips). Link to one "
        "video at a time."
    )


class NoUsableFormat(LinkError):
    code = "no_usable_format"
    message = (
        "The site offers this video only in a form the service cannot download directly (e.g. a "
        "live or segmented stream). Download it yourself and upload the file."
    )


class TooLarge(LinkError):
    code = "too_large"
    message = "This video is larger than the upload size limit."


class TooLong(LinkError):
    code = "too_long"
    message = "This video is longer than the upload duration limit."


class PageTooLarge(LinkError):
    code = "page_too_large"
    message = "The page at this link is too large to look for a video in."


class RateLimited(LinkError):
    code = "rate_limited"
