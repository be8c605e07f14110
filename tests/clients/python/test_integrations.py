"""Integrations with mattermostdriver: a Driver logged in with a personal access token
(``token=``) creates an incoming webhook (``webhooks.create_incoming_hook``) and posts through
it (``webhooks.call_webhook``), on a single node and on a 3-node cluster."""
import secrets

import pytest
from mattermostdriver import Driver

from conftest import Servers
from test_flows import PASSWORD, driver, eventually


@pytest.fixture(params=[1, 3], ids=['single-node', 'three-node-cluster'])
def token_servers(request, monkeypatch):
    # The nodes read their settings from the environment (CONFAB_*), as in production.
    monkeypatch.setenv('CONFAB_ENABLE_USER_ACCESS_TOKENS', 'true')
    s = Servers(request.param)
    try:
        yield s
    finally:
        s.stop()


def test_token_driver_posts_through_an_incoming_webhook(token_servers):
    ports = token_servers.ports
    tag = secrets.token_hex(3)
    admin = driver(ports[0], f'admin{tag}')
    eventually('sign up', lambda: admin.users.create_user(
        {'email': f'admin{tag}@example.com', 'username': f'admin{tag}', 'password': PASSWORD}))
    me = admin.login()
    team = admin.teams.create_team({'name': f'hooks-{tag}', 'display_name': 'Hooks', 'type': 'O'})
    town = admin.channels.get_channel_by_name(team['id'], 'town-square')
    token = admin.users.create_user_access_token(me['id'], {'description': 'python'})
    assert len(token['token']) == 26

    # Another node, no password: the token alone.
    with_token = Driver({
        'scheme': 'http', 'url': '127.0.0.1', 'port': ports[-1], 'basepath': '/api/v4',
        'token': token['token'], 'request_timeout': 30,
    })
    assert eventually('the token on the last node', with_token.login)['id'] == me['id']
    hook = with_token.webhooks.create_incoming_hook({'channel_id': town['id'], 'display_name': 'py hook'})
    assert hook['channel_id'] == town['id']
    response = with_token.webhooks.call_webhook(hook['id'], options={'text': 'from mattermostdriver'})
    assert response.status_code == 200
    assert response.text == 'ok'
    posts = eventually('the hook post', lambda: with_token.posts.get_posts_for_channel(town['id']),
                       lambda p: p['posts'][p['order'][0]]['message'] == 'from mattermostdriver')
    newest = posts['posts'][posts['order'][0]]
    assert newest['user_id'] == me['id']
    assert newest['props']['from_webhook'] == 'true'

    got = admin.users.get_user_access_token(token['id'])
    assert got['description'] == 'python'
    assert 'token' not in got
