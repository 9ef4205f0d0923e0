// The server's JSON API: every failure becomes an Error whose message is the server's line.
export async function getJSON(url) {
  return answer(await fetch(url));
}

export async function postJSON(url, body) {
  return answer(await fetch(url, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  }));
}

export async function postBytes(url, data) {
  return answer(await fetch(url, {
    method: "POST", headers: {"Content-Type": "application/octet-stream"}, body: data,
  }));
}

async function answer(response) {
  let data = null;
  try { data = await response.json(); } catch { /* not JSON: said below */ }
  if (!response.ok) {
    throw new Error((data && data.error) || `the studio answered ${response.status}`);
  }
  return data;
}

export const q = (path) => encodeURIComponent(path);
