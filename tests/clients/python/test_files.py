"""Files with mattermostdriver: ``files.upload_file`` (multipart with ``channel_id``), a post
with ``file_ids``, ``files.get_file`` byte for byte (on another node in the cluster), the file's
metadata, and a non-member refused."""
import hashlib
import os
import secrets

from mattermostdriver.exceptions import NotEnoughPermissions

from test_flows import PASSWORD, driver, eventually


def test_upload_attach_and_download(servers):
    ports = servers.ports
    port_a, port_b = ports[0], ports[1 % len(ports)]
    tag = secrets.token_hex(3)
    alice = driver(port_a, f'alice{tag}')
    eventually('sign up alice', lambda: alice.users.create_user(
        {'email': f'alice-{tag}@example.com', 'username': f'alice{tag}', 'password': PASSWORD}))
    alice.login()
    outsider = driver(port_b, f'eve{tag}')
    eventually('sign up eve', lambda: outsider.users.create_user(
        {'email': f'eve-{tag}@example.com', 'username': f'eve{tag}', 'password': PASSWORD}))
    outsider.login()
    team = alice.teams.create_team({'name': f'files-{tag}', 'display_name': 'Files', 'type': 'O'})
    channel = alice.channels.get_channel_by_name(team['id'], 'town-square')

    data = os.urandom(2 * 1024 * 1024 + 123)
    uploaded = alice.files.upload_file(channel['id'], {'files': ('report.bin', data)})
    [info] = uploaded['file_infos']
    assert info['name'] == 'report.bin'
    assert info['size'] == len(data)
    assert info['channel_id'] == channel['id']

    post = alice.posts.create_post({'channel_id': channel['id'], 'message': 'the report',
                                    'file_ids': [info['id']]})
    assert post['file_ids'] == [info['id']]
    assert [f['id'] for f in post['metadata']['files']] == [info['id']]

    reader = driver(port_b)
    reader.client.token = alice.client.token
    got = eventually('the file on the other node', lambda: reader.files.get_file(info['id']),
                     lambda r: r.status_code == 200)
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    assert got.headers['Content-Length'] == str(len(data))
    meta = reader.files.get_file_metadata(info['id'])
    assert meta['post_id'] == post['id']

    # Eve is in no channel of the team: the file is not hers to read.
    try:
        outsider.files.get_file(info['id'])
        raise AssertionError('a non-member read the file')
    except NotEnoughPermissions:
        pass
