"""upload-users: read a CSV of users, check every row, upload the good ones to CleverTap in
batches, and account for every row (uploaded, rejected, refused or not uploaded)."""
